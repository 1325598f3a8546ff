"""Generated from proto/ by ``python -m rpc.gen_protos``; do not edit."""
