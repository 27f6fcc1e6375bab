#!/usr/bin/python3
"""A stand-in desktop for the tray tests, on the session bus: a StatusNotifierWatcher (the part
of a panel that tray icons register with; Debian has none without a full desktop) and a
notification daemon. Prints one JSON line per event: ready, registered, unregistered, notify.
Run with /usr/bin/python3 (needs python3-dbus and python3-gi)."""
import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

WATCHER = "org.kde.StatusNotifierWatcher"


def say(**event):
    print(json.dumps(event), flush=True)


class Watcher(dbus.service.Object):
    def __init__(self, bus):
        super().__init__(bus, "/StatusNotifierWatcher")
        self.bus = bus
        self.items = []
        bus.add_signal_receiver(self.owner_changed, "NameOwnerChanged", "org.freedesktop.DBus")

    @dbus.service.method(WATCHER, in_signature="s", sender_keyword="sender")
    def RegisterStatusNotifierItem(self, item, sender=None):
        # libayatana-appindicator registers with its object path; the sender names the bus.
        service, path = (sender, item) if item.startswith("/") else (item, "/StatusNotifierItem")
        self.items.append(f"{service}{path}")
        say(event="registered", service=str(service), path=str(path))
        self.StatusNotifierItemRegistered(f"{service}{path}")

    @dbus.service.method(WATCHER, in_signature="s")
    def RegisterStatusNotifierHost(self, _service):
        pass

    @dbus.service.signal(WATCHER, signature="s")
    def StatusNotifierItemRegistered(self, item):
        pass

    @dbus.service.signal(WATCHER, signature="s")
    def StatusNotifierItemUnregistered(self, item):
        pass

    @dbus.service.signal(WATCHER, signature="")
    def StatusNotifierHostRegistered(self):
        pass

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        return self.GetAll(interface)[prop]

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, _interface):
        return {
            "RegisteredStatusNotifierItems": dbus.Array(self.items, signature="s"),
            "IsStatusNotifierHostRegistered": True,
            "ProtocolVersion": dbus.Int32(0),
        }

    def owner_changed(self, name, _old, new):
        if new:
            return
        for item in [i for i in self.items if i.startswith(name + "/")]:
            self.items.remove(item)
            say(event="unregistered", item=item)
            self.StatusNotifierItemUnregistered(item)


class Notifications(dbus.service.Object):
    IFACE = "org.freedesktop.Notifications"

    def __init__(self, bus):
        super().__init__(bus, "/org/freedesktop/Notifications")
        self.next_id = 0

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, _replaces, _icon, summary, body, _actions, _hints, _timeout):
        self.next_id += 1
        say(event="notify", app=str(app), summary=str(summary), body=str(body))
        return self.next_id

    @dbus.service.method(IFACE, out_signature="as")
    def GetCapabilities(self):
        return ["body"]

    @dbus.service.method(IFACE, out_signature="ssss")
    def GetServerInformation(self):
        return ("tray-host", "moe-sovereign-tests", "1", "1.2")

    @dbus.service.method(IFACE, in_signature="u")
    def CloseNotification(self, _id):
        pass


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    names = [dbus.service.BusName(n, bus, do_not_queue=True)
             for n in (WATCHER, "org.freedesktop.Notifications")]
    objects = [Watcher(bus), Notifications(bus)]
    say(event="ready", names=[n.get_name() for n in names], objects=len(objects))
    GLib.MainLoop().run()


if __name__ == "__main__":
    sys.exit(main())
