"""Generated from proto/ by ``python -m server.gen_protos``; do not edit."""
