#!/usr/bin/python3
"""Reads and clicks a tray menu over D-Bus (com.canonical.dbusmenu), as a panel does.
  dbusmenu.py layout SERVICE ITEM_PATH        -> JSON: the item's properties and menu items
  dbusmenu.py click SERVICE ITEM_PATH LABEL   -> sends a `clicked` event to the item so labelled
Run with /usr/bin/python3."""
import json
import sys
import time

import dbus

MENU = "com.canonical.dbusmenu"


def shown(label):
    """The label as a panel shows it: `_x` marks an access key (dropped), `__` is one `_`."""
    out, i = [], 0
    while i < len(label):
        if label[i] == "_" and i + 1 < len(label):
            out.append(label[i + 1] if label[i + 1] == "_" else "")
            i += 2 if label[i + 1] == "_" else 1
        else:
            out.append(label[i])
            i += 1
    return "".join(out)


def flatten(node, out):
    _id, props, children = node
    if props.get("type") != "separator" and _id != 0:
        out.append({
            "id": int(_id),
            "label": shown(str(props.get("label", ""))),
            "enabled": bool(props.get("enabled", True)),
            "visible": bool(props.get("visible", True)),
            "toggle": str(props.get("toggle-type", "")),
            "checked": int(props.get("toggle-state", -1)) == 1,
        })
    for child in children:
        flatten(child, out)


def read(bus, service, path):
    item = bus.get_object(service, path)
    props = dbus.Interface(item, dbus.PROPERTIES_IFACE).GetAll("org.kde.StatusNotifierItem")
    menu_path = str(props["Menu"])
    menu = dbus.Interface(bus.get_object(service, menu_path), MENU)
    _revision, layout = menu.GetLayout(0, -1, [])
    items = []
    flatten(layout, items)
    return {"id": str(props.get("Id", "")), "status": str(props.get("Status", "")),
            "icon": str(props.get("IconName", "")), "menu": menu_path, "items": items}, menu


def main(argv):
    bus = dbus.SessionBus()
    command, service, path = argv[1], argv[2], argv[3]
    found, menu = read(bus, service, path)
    if command == "layout":
        print(json.dumps(found))
        return 0
    if command == "click":
        label = argv[4]
        matches = [i for i in found["items"] if i["label"] == label]
        if len(matches) != 1:
            print(f"no single item labelled {label!r}: {[i['label'] for i in found['items']]}", file=sys.stderr)
            return 1
        menu.Event(matches[0]["id"], "clicked", dbus.Int32(0, variant_level=1), dbus.UInt32(int(time.time())))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
