"""FastMCP peer: the same echo and add tools, stateless, JSON replies.

    python fastmcp_server.py PORT
"""

import sys

import uvicorn
from fastmcp import FastMCP

mcp = FastMCP("bench")


@mcp.tool
def echo(text: str) -> str:
    """Echo the text back."""
    return text


@mcp.tool
def add(a: float, b: float) -> str:
    """Add two numbers."""
    return str(a + b)


if __name__ == "__main__":
    app = mcp.http_app(path="/mcp", stateless_http=True, json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
