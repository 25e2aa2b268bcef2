;; The SIMD pass of RFC 6455 §5.3 unmasking (lib/protocol/mask.ts): XORs [at, end) of this module's memory with
;; the 4-byte key repeated, 16 bytes per instruction. The caller copies the payload in, calls `xor` with a multiple
;; of 16 bytes, and copies the result out, a block of at most one page (64 KiB) at a time.
;;
;; The key arrives as an i32 whose low byte is the key byte of `at` (WebAssembly is little-endian on every
;; platform), so splatting it across four lanes lines every byte up with its key byte.
;;
;; After an edit, run `npm run build:wasm` to regenerate mask-wasm.ts, which is what ships;
;; test/protocol/mask-wasm.spec.ts assembles this file again and fails when the two differ.
(module
  (memory (export "memory") 1)
  (func (export "xor") (param $at i32) (param $end i32) (param $key i32)
    (local $k v128)
    (local.set $k (i32x4.splat (local.get $key)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
      (v128.store (local.get $at) (v128.xor (v128.load (local.get $at)) (local.get $k)))
      (local.set $at (i32.add (local.get $at) (i32.const 16)))
      (br $next)))))
