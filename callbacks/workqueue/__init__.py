"""The agents' work queue: agents, callback requests, attempts and the dialer."""
