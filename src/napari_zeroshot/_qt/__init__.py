"""The Qt-bound parts of the plugin: the dock widget, its control groups, the live
preview and the thread worker. Everything outside this package runs without Qt."""
