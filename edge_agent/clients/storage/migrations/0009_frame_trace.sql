-- A queued frame keeps the W3C trace of the request that brought it, so the
-- recognizer call made later by a worker joins the camera's trace.
ALTER TABLE frames ADD COLUMN traceparent TEXT;
