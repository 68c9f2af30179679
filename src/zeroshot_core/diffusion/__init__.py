"""Reverse diffusion: the scheduler table, guided sampling, volume translation and
adjacent-slice consistency."""
