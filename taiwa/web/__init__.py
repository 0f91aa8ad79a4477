"""The approval inbox web page (`taiwa serve`)."""
