"""Imaging: recognising, decoding and checking images with OpenCV (blocking code)."""
