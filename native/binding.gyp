{
  "targets": [
    {
      "target_name": "plexus_netns",
      "sources": ["netns.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
