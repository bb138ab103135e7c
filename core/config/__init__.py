"""The configuration: its schema, one module per section, and how a file becomes a Config."""
