"""Helpers shared by the end-to-end channel tests."""

from __future__ import annotations

import io
from fractions import Fraction

from PIL import Image


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    value = abs(value)
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    seconds = Fraction((minutes_full - minutes) * 60).limit_denominator(10000)
    return Fraction(degrees), Fraction(minutes), seconds


def gps_jpeg(latitude: float, longitude: float, *, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small JPEG as a phone camera writes it: EXIF with the camera model and a GPS position."""
    image = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "Samsung"  # Make
    exif[0x0110] = "SM-A155F"  # Model
    gps = exif.get_ifd(0x8825)
    gps[1] = "S" if latitude < 0 else "N"
    gps[2] = _dms(latitude)
    gps[3] = "W" if longitude < 0 else "E"
    gps[4] = _dms(longitude)
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()
