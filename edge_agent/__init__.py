"""Edge attendance appliance: frames in, attendance marks out."""

__version__ = "0.1.0"
