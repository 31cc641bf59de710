"""Twilio's webhooks (calls, the dialer's calls, SMS), TwiML rendering and the signature check."""
