"""Device drivers of edge-agent, one package per device family, found by entry point."""
