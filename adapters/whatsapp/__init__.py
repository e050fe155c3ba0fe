"""WhatsApp channels: the Cloud API (Meta) and Twilio's WhatsApp sender."""
