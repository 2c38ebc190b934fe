# The everyday commands; each one is what README.md says to type.
#   make serve   the catalog app over MCP at http://127.0.0.1:8000/mcp
#   make demo    the client side: a gateway, searches, a retry, a breaker, metrics
#   make chat    chat with a model that calls the tools of the servers in config/mcp.json,
#                or of URL=http://host/mcp (needs ANTHROPIC_API_KEY or OPENAI_API_KEY)
#   make test    every test, as CI runs them

URL ?=

.PHONY: serve demo chat test

serve:
	cargo run --release -- serve

demo:
	cargo run --release -- demo

chat:
	cargo run --release -- chat$(if $(URL), --url $(URL))

test:
	cargo xtask ci
