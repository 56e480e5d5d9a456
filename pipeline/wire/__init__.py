"""The HLT merger wire format: DataTopic headers, TMessage payloads, request and reply framing.

Transport (ZeroMQ sockets) lives elsewhere; everything here turns bytes into objects and back.
"""
