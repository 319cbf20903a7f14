/**
 * LDP analytics Web SDK: the frequency oracles of the Python SDK, byte-compatible on the
 * wire (docs/mechanisms.md). Browser global: `LDP` (dist/ldp-sdk.min.js).
 *
 *     const m = LDP.create("oue", { epsilon: 1, domainSize: 100 });
 *     const payload = m.perturb(42);       // {"v":1,"m":"oue","bits":"..."}
 *     const hash = await m.configHash();   // "sha256:..." as the server computes it
 */

export { ConfigError, LDPError, ReportDecodeError, type DecodeReason } from "./errors.js";
export { CanonicalJSONError, canonicalJson, configHash, configHashSync } from "./canonical.js";
export { sha256, toHex } from "./sha256.js";
export { decodeBase64Strict, encodeBase64 } from "./base64.js";
export { exp, log, logaddexp, roundHalfEven } from "./math.js";
export {
  bernoulli,
  bernoulliBits,
  cryptoSource,
  hexToBytes,
  probabilityThreshold,
  randomU64,
  ReplaySource,
  Threshold,
  uniformInt,
  type RandomSource,
} from "./random.js";
export {
  EPSILON_MAX,
  EPSILON_MIN,
  FrequencyOracle,
  WIRE_VERSION,
  validateDomainSize,
  validateEpsilon,
  type BitsPayload,
  type DecodedReport,
  type HashPayload,
  type IndexPayload,
  type MechanismConfig,
  type MechanismName,
  type Payload,
  type PrivacyStatement,
} from "./mechanisms/base.js";
export { GRR, grrProbabilities } from "./mechanisms/grr.js";
export { OUE, SUE, UnaryEncoding, packBits, unpackBits } from "./mechanisms/unary.js";
export { BLH, expandSeed, HASH_FAMILY, hashValue, OLH, optimalG, seedHex, splitmix64 } from "./mechanisms/olh.js";
export { Hadamard, inHalf } from "./mechanisms/hadamard.js";
export { choose } from "./mechanisms/auto.js";
export { available, create, fromConfig, type CreateOptions } from "./mechanisms/index.js";
export {
  AttributeParameters,
  amplifiedEpsilon,
  availableMultidim,
  createMultidim,
  decodeBits,
  epsilonForTupleBudget,
  MAX_ATTRIBUTES,
  multidimFromConfig,
  RSFD,
  RSFD_ADP,
  RSFD_GRR,
  RSFD_NAMES,
  RSFD_OUE_R,
  RSFD_OUE_Z,
  type MultidimConfig,
  type MultidimOptions,
  type MultidimPayload,
  type MultidimPrivacy,
  type MultidimReport,
  type Neighbouring,
  type RSFDName,
} from "./multidim/rsfd.js";
export {
  domainFromConfig,
  fmix32,
  IntegerDomain,
  ITEM_ENCODING,
  ItemEncodingError,
  KEY_FAMILY,
  prefixKey,
  StringDomain,
  type Domain,
  type DomainConfig,
} from "./heavy/encoding.js";
export { availableHeavyHitters, createHeavyHitters, heavyHittersFromConfig } from "./heavy/factory.js";
export {
  bucketOf,
  checkScreen,
  defaultScreen,
  KnownCandidates,
  LINEAR_HASH,
  linearHash,
} from "./heavy/known.js";
export {
  G_MAX,
  HeavyHitterClient,
  PEM,
  pemLengths,
  TAP,
  TAPS,
  TreeHist,
  type DecodedHHReport,
  type HeavyHitters,
  type HHPayload,
  type HHProtocolName,
} from "./heavy/protocols.js";
export {
  CollectionConfig,
  epochOf,
  maxUnits,
  parseTimestampMicros,
  SUPPORTED_KINDS,
  type BudgetPolicy,
  type CollectionKind,
  type Protocol,
} from "./client/config.js";
export {
  ClientClosedError,
  ClientError,
  ConfigHashMismatchError,
  ConfigUnavailableError,
  DeviceBudgetExceededError,
  HTTPError,
  UnsupportedCollectionError,
} from "./client/errors.js";
export {
  DocumentStore,
  LocalStorageBackend,
  MemoryBackend,
  type BudgetRow,
  type ChargeRow,
  type ConfigRow,
  type DeviceStore,
  type OutboxRow,
  type RejectedRow,
  type Settlement,
  type StorageLike,
} from "./client/store.js";
export { IndexedDBStore, indexedDBAvailable } from "./client/idb.js";
export {
  Client,
  DEFERRED_REASONS,
  FlushResult,
  KEEPALIVE_BUDGET,
  RETRYABLE_STATUSES,
  RetryPolicy,
  retryAfterSeconds,
  SDK_VERSION,
  ENVELOPE_VERSION,
  type BudgetStatus,
  type ClientOptions,
  type ReportReceipt,
  type Spend,
  type StorageChoice,
} from "./client/client.js";
