package org.ldp.sdk.heavy;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.ldp.sdk.RandomSource;
import org.ldp.sdk.SecureRandomSource;

/**
 * A heavy-hitter protocol's device side, whichever protocol it is (PEM, TreeHist, TAP/TAPS:
 * {@link HeavyHitters}; known candidates: {@link KnownCandidates}): what the device runtime
 * needs to check an item, report it once, and read the config the server wrote.
 */
public interface HeavyHitterProtocol {
  /** The protocol's name in the config ("pem", "treehist", "tap", "taps" or "known"). */
  String protocol();

  /** The items' domain (hh-item-v1). */
  ItemDomain domain();

  /** The canonical config, as the Python SDK writes it (same fields, same values). */
  JsonObject config();

  /** The hash of {@link #config()} (sha256 of its canonical JSON). */
  String configHash();

  /** What the ledger charges per report. */
  double epsilonCharged();

  /** Refuse a bad item or party before anything is drawn or charged (ItemEncodingException / IllegalArgumentException). */
  void validate(Object item, Object party);

  /** One report of {@code item} (and {@code party} for a federated protocol, else null): the wire payload. */
  JsonObject perturb(Object item, Object party, RandomSource source);

  /** {@link #perturb(Object, Object, RandomSource)} with the platform CSPRNG. */
  default JsonObject perturb(Object item, Object party) {
    return perturb(item, party, SecureRandomSource.INSTANCE);
  }

  /** Parse one payload as the Python server does (ReportDecodeException with its reason and {@code index}). */
  JsonObject decode(JsonElement payload, int index);
}
