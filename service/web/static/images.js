// Generated images in the page: the .npy body of POST /generate?format=npy, drawn onto canvases.
//
//   const { count, side, pixels } = parseNpy(await response.arrayBuffer());
//   drawGray(canvas, pixels.subarray(0, side * side), side);

// uint8 (n, side, side) from an .npy body (format versions 1-3, C order), as the service writes it.
export function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(1, 6));
  if (bytes[0] !== 0x93 || magic !== "NUMPY") throw new Error("the service did not send an .npy array");
  const major = bytes[6];
  const view = new DataView(buffer);
  const start = major === 1 ? 10 : 12;
  const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const header = new TextDecoder("latin1").decode(bytes.subarray(start, start + length));
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!header.includes("'|u1'") || !shape || header.includes("'fortran_order': True")) {
    throw new Error(`unexpected array in the .npy body: ${header.trim()}`);
  }
  const [count, side] = shape[1].split(",").filter((part) => part.trim()).map(Number);
  const pixels = bytes.subarray(start + length);
  if (pixels.length !== count * side * side) throw new Error("the .npy body is cut short");
  return { count, side, pixels };
}

// Draw a grey image (side x side uint8) onto a canvas of the same size, pixel for pixel.
export function drawGray(canvas, grey, side) {
  canvas.width = side;
  canvas.height = side;
  const context = canvas.getContext("2d");
  const image = context.createImageData(side, side);
  for (let i = 0; i < grey.length; i++) {
    image.data[4 * i] = grey[i];
    image.data[4 * i + 1] = grey[i];
    image.data[4 * i + 2] = grey[i];
    image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}
