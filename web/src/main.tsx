import { render } from "preact"; render(<p>IT0</p>, document.getElementById("app")!);
