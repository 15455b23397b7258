{
  "targets": [
    {
      "target_name": "plexus_netns",
      "sources": ["netns.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "plexus_udp",
      "sources": ["udp.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "plexus_mem",
      "sources": ["mem.cc"],
      "cflags_cc": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "plexus_spawn",
      "sources": ["spawn.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
