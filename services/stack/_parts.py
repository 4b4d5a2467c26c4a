"""The parts ``modelstream up`` runs, in start order, and how each says it is ready."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PARTS", "Part", "gateway_part"]


@dataclass(frozen=True)
class Part:
    """One ``modelstream run <name> <args>`` process.

    ``ready_url``: an HTTP address that answers 200 once the part serves (the gateway);
    without one, the part is ready when its log says `` ready`` (scorer, monitor, merger,
    sink).
    """

    name: str
    args: tuple[str, ...] = ()
    ready_url: str | None = None
    url: str | None = None  # what a user opens or calls, if anything

    def command(self) -> list[str]:
        """The ``modelstream`` arguments that run this part.

        >>> gateway_part("127.0.0.1", 8081).command()
        ['run', 'gateway', '--host', '127.0.0.1', '--port', '8081']
        """
        return ["run", self.name, *self.args]


def gateway_part(host: str, port: int) -> Part:
    """The gateway on ``host:port`` (``0.0.0.0`` is reached over loopback)."""
    reach = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - a name, not a bind
    url = f"http://{reach}:{port}"
    return Part("gateway", ("--host", host, "--port", str(port)), f"{url}/v2/health/ready", url)


# the sink first: it owns the embedded warehouse and lands what the others write (and the
# lifecycle reads through it)
PARTS: tuple[Part, ...] = (
    Part("sink"), Part("scorer"), Part("monitor"), Part("merger"), Part("lifecycle"),
)  # fmt: skip
