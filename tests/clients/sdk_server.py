"""A stdio MCP server written with the official Python SDK (its MCPServer API), for `wharf client`
and `wharf gateway` to talk to."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("python-sdk-notes")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Repeat the text in capitals."""
    return text.upper()


@server.resource("notes://readme")
def readme() -> str:
    """The notes' readme."""
    return "Notes served by the Python SDK."


@server.prompt()
def summarize(topic: str) -> str:
    """Ask for a summary of a topic."""
    return f"Summarize {topic} in one sentence."


if __name__ == "__main__":
    server.run("stdio")
