"""Media engine: RTSP ingest, RTP depacketizing, fragmented MP4, segments. No Django."""
