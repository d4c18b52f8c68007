"""First module of the forkserver's preload during the launch profile: marks its start."""

from launch_marks import mark

mark("server: preload starts")
