package org.ldp.sdk.longitudinal;

import com.google.gson.JsonObject;

/**
 * Where a device keeps its memos and per-collection device state (Python's MemoStore). Writes
 * must be durable when they return, and a memo is never overwritten: redrawing a permanent
 * response destroys the long-term guarantee. The runtime's own stores (the file journal and
 * SQLite, {@link org.ldp.sdk.client.DeviceStore}) keep memos keyed by an HMAC of the memo key
 * inside the report transaction; this interface serves direct use of a protocol.
 */
public interface MemoStore {
  JsonObject get(String collection, long memoKey);

  void put(String collection, long memoKey, JsonObject memo);

  int count(String collection);

  JsonObject getState(String collection);

  void putState(String collection, JsonObject state);
}
