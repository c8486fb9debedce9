"""Local Slack stand-in: a fake Web API server and a client that plays Slack calling the app.

* :class:`SlackStandIn` answers the Web API (point ``slack_sdk.WebClient(base_url=...)`` at
  ``standin.api_url``), records calls and keeps what users would see.
* :class:`SlackSender` sends signed slash commands, interactions and events to the app.
"""

from chatops.standin.client import Response, SlackSender, build_view_state, element_state
from chatops.standin.webapi import (
    SlackStandIn,
    WebApiCall,
    iter_interactive_elements,
    validate_blocks,
    validate_view,
)

__all__ = [
    "Response",
    "SlackSender",
    "SlackStandIn",
    "WebApiCall",
    "build_view_state",
    "element_state",
    "iter_interactive_elements",
    "validate_blocks",
    "validate_view",
]
