// The platform-independent API of @wgrad/tensor (no Node APIs below this file).

export * from './creation.js';
export {
  type AdapterSummary,
  adapterSummary,
  type DispatchCost,
  dispatch,
  dispatchStats,
  emptyCache,
  FLAT_INDEX,
  f32,
  grid,
  isDebug,
  type Kernel,
  // Low-level kernel API for packages that add fused kernels (optimizers, losses).
  keepNan,
  keepNan4,
  kernel,
  kernelFor,
  limits,
  MAIN_1D,
  onDeviceChange,
  type ProfileEntry,
  profileReport,
  resetPeakMemory,
  setDebug,
  setDevice,
  setProfiling,
  setUniformBinding,
  staticUniforms,
  sync,
  type UniformBinding,
  type UWord,
} from './gpu.js';
export {
  type Conv2dOptions,
  type ConvTranspose2dOptions,
  conv2d,
  convTranspose2d,
  type Pair,
  setConvColumnBudget,
} from './ops/conv.js';
export * from './ops/elementwise.js';
export { bceTerms, fusedSum, klTerms, reparameterize, sqDiff } from './ops/fused.js';
export {
  type Body as GemmBody,
  disabledGemmPaths,
  gemmBody,
  gemmTexture,
  gemmTextureRead,
  setGemmBody,
  setGemmTexture,
  setGemmTextureRead,
  type TextureMode as GemmTextureMode,
  type TextureRead as GemmTextureRead,
} from './ops/gemm.js';
export { type GemmCheck, verifyGemm, verifyGemmOnce } from './ops/gemm-check.js';
export { addmm, type FusedActivation, linear, matmul, mm } from './ops/linalg.js';
export * from './ops/movement.js';
export { oneHot } from './ops/onehot.js';
export { avgPool2d, interpolate, maxPool2d, type PoolOptions, upsampleNearest2d } from './ops/pool.js';
export { manualSeed, rand, randn, rngState, setRngState } from './ops/random.js';
export {
  argmax,
  argmin,
  logSoftmax,
  logsumexp,
  max,
  mean,
  min,
  softmax,
  sum,
  sumOfSquares,
  variance,
} from './ops/reduce.js';
export {
  compilesAtFirstDispatch,
  type KernelSource,
  type PrecompileOptions,
  type PrecompileResult,
  precompile,
  recordKernels,
} from './precompile.js';
export { measurePeaks, type Peaks, type RooflineRow, roofline } from './roofline.js';
export {
  type DType,
  fmtShape,
  type GradNode,
  isGradEnabled,
  keep,
  type MemoryInfo,
  memory,
  type NestedArray,
  noGrad,
  record,
  type Shape,
  scope,
  shapeSize,
  sumTo,
  Tensor,
} from './tensor.js';
