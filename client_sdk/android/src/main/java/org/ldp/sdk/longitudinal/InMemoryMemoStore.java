package org.ldp.sdk.longitudinal;

import com.google.gson.JsonObject;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/** A {@link MemoStore} in memory (tests, simulations); JSON-safe copies as a database would keep. */
public final class InMemoryMemoStore implements MemoStore {
  private final Map<String, TreeMap<Long, JsonObject>> memos = new HashMap<>();
  private final Map<String, JsonObject> states = new HashMap<>();

  @Override
  public synchronized JsonObject get(String collection, long memoKey) {
    TreeMap<Long, JsonObject> m = memos.get(collection);
    JsonObject memo = m == null ? null : m.get(memoKey);
    return memo == null ? null : memo.deepCopy();
  }

  @Override
  public synchronized void put(String collection, long memoKey, JsonObject memo) {
    TreeMap<Long, JsonObject> m = memos.computeIfAbsent(collection, k -> new TreeMap<>());
    JsonObject old = m.get(memoKey);
    if (old != null && !old.equals(memo)) {
      throw new MemoException("memo " + memoKey + " of collection '" + collection + "' exists; a permanent response is never redrawn");
    }
    m.put(memoKey, memo.deepCopy());
  }

  @Override
  public synchronized int count(String collection) {
    TreeMap<Long, JsonObject> m = memos.get(collection);
    return m == null ? 0 : m.size();
  }

  @Override
  public synchronized JsonObject getState(String collection) {
    JsonObject s = states.get(collection);
    return s == null ? null : s.deepCopy();
  }

  @Override
  public synchronized void putState(String collection, JsonObject state) {
    JsonObject old = states.get(collection);
    if (old != null && !old.equals(state)) {
      throw new MemoException("device state of collection '" + collection + "' exists and is fixed for the horizon");
    }
    states.put(collection, state.deepCopy());
  }
}
