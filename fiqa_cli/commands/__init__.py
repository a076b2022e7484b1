"""The click commands: thin layers that parse options and call the runtime."""
