"""Claude Code front ends: the MCP stdio server and the hook handlers. Only these import `mcp`."""
