"""Carrier SMS gateways speaking Kannel's HTTP interface (sms-service get-url/post-url, sendsms, DLR)."""

from adapters.kannel.adapter import KannelAdapter

__all__ = ["KannelAdapter"]
