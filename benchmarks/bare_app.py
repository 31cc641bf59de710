"""The baseline for benchmarks/webhook.py: a bare Flask app that answers constant TwiML.

Every POST, to any path, gets the same menu step the real app would send (a tip, a <Gather>
with the menu prompt, a <Redirect> for silence) as text/xml: no signature check, no form
parsing, no database, no engine. What is left is the cost of gunicorn, Werkzeug and Flask
routing, which the real webhooks pay as well.

    gunicorn 'benchmarks.bare_app:create_app()'
"""

from __future__ import annotations

from flask import Flask, Response

# The shape and size (about 650 bytes) of a real topic-menu step of flows/it-support.yaml.
# The Gather action has the same form as the app's, so the load generator drives both alike.
MENU_STEP = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Say language="en-US" voice="Polly.Joanna">Tip: check that you are signed in to the '
    "Wi-Fi, then restart the VPN client.</Say>"
    '<Gather action="/voice/step?v=1&amp;n=network_menu&amp;l=en&amp;a=0&amp;s=3" '
    'input="dtmf" language="en-US" method="POST" numDigits="1" timeout="6">'
    '<Say language="en-US" voice="Polly.Joanna">To speak to an agent, press 1. To leave a '
    "voicemail, press 2. To request a callback, press 3.</Say>"
    '<Say language="en-US" voice="Polly.Joanna">To hear these options again, press '
    "star.</Say></Gather>"
    '<Redirect method="POST">/voice/silence?v=1&amp;n=network_menu&amp;l=en&amp;a=0&amp;s=3'
    "</Redirect></Response>"
)


def create_app() -> Flask:
    """A Flask app whose every POST answers MENU_STEP."""
    app = Flask(__name__)
    body = MENU_STEP.encode()

    @app.post("/", defaults={"path": ""})
    @app.post("/<path:path>")
    def menu_step(path: str) -> Response:
        return Response(body, mimetype="text/xml")

    return app
