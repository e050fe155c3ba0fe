"""Telegram Bot API channel: webhook intake, replies and file downloads through python-telegram-bot."""

from adapters.telegram.adapter import TelegramAdapter

__all__ = ["TelegramAdapter"]
