package org.ldp.sdk;

import com.google.gson.JsonObject;

/** Lets tests in other packages read the shared vectors. */
public final class MechanismVectorsTestAccess {
  private MechanismVectorsTestAccess() {}

  public static JsonObject load(String name) {
    return Vectors.load(name);
  }
}
