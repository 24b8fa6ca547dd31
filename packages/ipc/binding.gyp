{
  "targets": [
    {
      "target_name": "exonet_ipc",
      "sources": ["native/exonet_ipc.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lrt", "-lpthread"]
    }
  ]
}
