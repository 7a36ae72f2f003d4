#!/usr/bin/env python3
"""A dynamic inventory script, as Ansible's script plugin runs it."""

import json
import sys

if "--host" in sys.argv:
    print("{}")
else:
    print(
        json.dumps(
            {
                "workers": {"hosts": ["dyn1", "dyn2"], "vars": {"ansible_user": "svc"}},
                "_meta": {
                    "hostvars": {
                        "dyn1": {"ansible_host": "198.51.100.1"},
                        "dyn2": {"ansible_host": "198.51.100.2", "ansible_connection": "local"},
                    }
                },
            }
        )
    )
