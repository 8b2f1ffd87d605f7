#!/bin/sh
printf 'script %s|%s\n' "$CV_PLAY" "$CV_TASK" > /srv/compat/script.txt
