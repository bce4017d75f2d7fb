"""Routing a visit's sockets to the node that runs it.

A visit's media and relay live in one process (its owner, app/web/nodes.py); rather than relay
signaling between processes over Redis, the page connects to the owner itself, through the path
a proxy sends to that node unchanged (`/node/<id>/socket.io/`, deploy/nginx.conf). A socket that
reaches another node is refused with `wrong_node`, naming the owner and its path: the page
re-asks placement and connects there.
"""

from __future__ import annotations

from app.core.errors import Conflict
from app.web.nodes import Placement
from signaling.server import node_socket_path

WRONG_NODE = "wrong_node"


def placement_public(placement: Placement) -> dict[str, object]:
    """The placement as pages read it: the owner node, its epoch, and its Socket.IO path."""
    return placement.public() | {"socket_path": node_socket_path(placement.node_id)}


class WrongNode(Conflict):
    """A visit event reached a node that does not run the visit."""

    code = WRONG_NODE

    def __init__(self, placement: Placement) -> None:
        super().__init__(
            "This visit runs on another server; reconnecting there.",
            detail=placement_public(placement),
        )
