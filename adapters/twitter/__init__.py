"""X/Twitter: hashtag and mention intake (polling and Account Activity webhook), safe public replies."""

from adapters.twitter.adapter import TwitterAdapter

__all__ = ["TwitterAdapter"]
