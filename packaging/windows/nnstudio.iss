; Inno Setup 6 script: packs the PyInstaller one-folder build into nnstudio-<version>-windows-x64-setup.exe.
;
; Built by .github/workflows/package.yml on windows-latest (Inno Setup 6 is on that image):
;     python -m PyInstaller --noconfirm --distpath packaging\dist\pyinstaller --workpath packaging\dist\.work packaging\nnstudio.spec
;     iscc /DAppVersion=0.1.0 packaging\windows\nnstudio.iss
; It expects packaging\dist\pyinstaller\nnstudio\ (nnstudio.exe, nnstudio-gui.exe, _internal\) and
; packaging\windows\nnstudio.ico (the workflow writes it from resources\icons\nnstudio.png).
; NOT TESTED on the Linux machine where it was written: only the CI workflow runs it.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#define AppName "nnstudio"
#define BuildDir "..\dist\pyinstaller\nnstudio"

[Setup]
; A fixed AppId keeps upgrades and uninstall in one entry; never change it.
AppId={{5B0E7C61-2F3B-4B9E-9F2A-6E1D3C8A4F10}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=nnstudio developers
DefaultDirName={autopf}\nnstudio
DefaultGroupName=nnstudio
DisableProgramGroupPage=yes
; Per-user install without admin rights by default; the dialog offers all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\dist
OutputBaseFilename=nnstudio-{#AppVersion}-windows-x64-setup
SetupIconFile=nnstudio.ico
UninstallDisplayIcon={app}\nnstudio-gui.exe
Compression=lzma2/normal
SolidCompression=yes
LZMANumBlockThreads=4
WizardStyle=modern
ChangesEnvironment=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add nnstudio to PATH (the nnstudio command in terminals)"; Flags: unchecked

[Files]
Source: "{#BuildDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\nnstudio"; Filename: "{app}\nnstudio-gui.exe"; WorkingDir: "{userdocs}"
Name: "{autodesktop}\nnstudio"; Filename: "{app}\nnstudio-gui.exe"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Registry]
; PATH for the current user (per-user install) or the machine (all-users install).
Root: HKA; Subkey: "{code:EnvKey}"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\nnstudio-gui.exe"; Description: "{cm:LaunchProgram,nnstudio}"; Flags: nowait postinstall skipifsilent

[Code]
function EnvKey(Param: String): String;
begin
  if IsAdminInstallMode then
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
  else
    Result := 'Environment';
end;

function NeedsAddPath(Dir: String): Boolean;
var
  Paths: String;
  RootKey: Integer;
begin
  if IsAdminInstallMode then RootKey := HKEY_LOCAL_MACHINE else RootKey := HKEY_CURRENT_USER;
  if not RegQueryStringValue(RootKey, EnvKey(''), 'Path', Paths) then
  begin
    Result := True;
    exit;
  end;
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') = 0;
end;
