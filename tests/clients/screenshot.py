#!/usr/bin/python3
"""Saves the X display's root window as a PNG and prints how many distinct colours a sample of
its pixels has (1 = blank), how many the top 40 px band has (the dashboard's header: its brand
and page links; a login page has none there) and how many the band below it has (a page's
content: the dashboard's cards and charts).
  screenshot.py OUT.png   (DISPLAY must be set; /usr/bin/python3)"""
import sys

import gi

gi.require_version("Gdk", "3.0")
from gi.repository import Gdk  # noqa: E402

root = Gdk.get_default_root_window()
width, height = root.get_width(), root.get_height()
shot = Gdk.pixbuf_get_from_window(root, 0, 0, width, height)
shot.savev(sys.argv[1], "png", [], [])
pixels = shot.get_pixels()
stride, channels = shot.get_rowstride(), shot.get_n_channels()
colours, header, body = set(), set(), set()
for y in range(0, height, 3):
    for x in range(0, width, 3):
        at = y * stride + x * channels
        colour = bytes(pixels[at:at + 3])
        colours.add(colour)
        if y < 40:
            header.add(colour)
        elif y < 400:
            body.add(colour)
print(len(colours), len(header), len(body))
