#!/bin/sh
echo "from the role: $1" > "$2"
