#!/usr/bin/python3
"""Prints the X clipboard's text (CLIPBOARD selection), as a paste would get it.
  clipboard.py   (DISPLAY must be set; /usr/bin/python3 with python3-gi)"""
import gi

gi.require_version("Gdk", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import Gdk, Gtk  # noqa: E402

print(Gtk.Clipboard.get(Gdk.SELECTION_CLIPBOARD).wait_for_text() or "", end="")
