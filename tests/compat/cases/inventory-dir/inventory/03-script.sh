#!/bin/sh
# An executable inventory: --list prints groups and _meta.hostvars.
if [ "$1" = "--list" ]; then
    cat <<'JSON'
{"cache": {"hosts": ["h1"], "vars": {"cache_size": 64}},
 "web": {"children": ["edge"]},
 "edge": {"hosts": ["h2"]},
 "_meta": {"hostvars": {"h1": {"from_script": "yes"}}}}
JSON
else
    echo '{}'
fi
