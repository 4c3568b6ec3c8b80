// Served by the app (no inline script, nothing from a CDN): the optional drawn signature on the
// sign page. The typed name is the signature; a drawing is added to it when the patient makes
// one. Without this script the pad stays hidden and the form signs with the typed name.
(() => {
  const pad = document.querySelector("[data-signature-pad]");
  const form = document.getElementById("sign-form");
  if (!pad || !form) return;
  const canvas = pad.querySelector("canvas");
  const field = form.querySelector("input[name='signature']");
  const context = canvas.getContext("2d");
  let drawing = false;
  let drawn = false;

  pad.hidden = false;
  context.lineWidth = 3;
  context.lineCap = "round";
  context.lineJoin = "round";
  context.strokeStyle = "#1b1f24";

  // A drawing kept from a refused submission is shown again, so what is sent is what is seen.
  if (field.value.startsWith("data:image/png;base64,")) {
    const image = new Image();
    image.onload = () => { context.drawImage(image, 0, 0); drawn = true; };
    image.src = field.value;
  }

  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * canvas.width) / box.width,
      y: ((event.clientY - box.top) * canvas.height) / box.height,
    };
  };

  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    const { x, y } = point(event);
    context.beginPath();
    context.moveTo(x, y);
    context.lineTo(x + 0.1, y + 0.1);
    context.stroke();
    drawn = true;
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const { x, y } = point(event);
    context.lineTo(x, y);
    context.stroke();
    event.preventDefault();
  });
  const stop = () => { drawing = false; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);

  pad.querySelector("[data-signature-clear]").addEventListener("click", () => {
    context.clearRect(0, 0, canvas.width, canvas.height);
    drawn = false;
    field.value = "";
  });

  form.addEventListener("submit", () => {
    field.value = drawn ? canvas.toDataURL("image/png") : "";
  });
})();
