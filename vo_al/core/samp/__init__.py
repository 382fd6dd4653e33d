"""samp"""
