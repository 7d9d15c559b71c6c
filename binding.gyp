# The addon: the netlink socket (native/netlink.cc) and the stdout hangup watch (native/hangup.cc), built by `node-gyp rebuild` on npm install; loaded from build/Release.
{
  "targets": [
    {
      "target_name": "netlink_native",
      "sources": ["native/netlink.cc", "native/hangup.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fno-exceptions"]
    }
  ]
}
