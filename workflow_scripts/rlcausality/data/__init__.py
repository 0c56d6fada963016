"""The corpus (generated, loaded, audited), its formatting into prompts and samples."""
