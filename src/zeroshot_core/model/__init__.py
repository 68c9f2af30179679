"""Models: the model folder format (card + safetensors weights), loading by name or
guidance, the bundled model folders (``bundled/``) and the compute device."""
