/**
 * Counts the bytes that `Buffer.allocUnsafe` hands out while a function runs: zlib's one-shot calls take their
 * output chunks from it, so this is how the tests see what refusing a compression bomb allocated.
 */
export function bytesAllocatedBy<T>(fn: () => T): { result: T; bytes: number } {
  const allocUnsafe = Buffer.allocUnsafe;
  let bytes = 0;
  Buffer.allocUnsafe = (size: number): Buffer<ArrayBuffer> => {
    bytes += size;
    return allocUnsafe(size);
  };
  try {
    const result = fn();
    return { result, bytes };
  } finally {
    Buffer.allocUnsafe = allocUnsafe;
  }
}
